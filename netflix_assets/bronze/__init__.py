"""Bronze: landed titles files and HTTP-pulled lookup files, as raw strings + lineage."""
