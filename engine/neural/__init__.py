"""Neural backends of the paper (they need weights: see ``engine.models``)."""
