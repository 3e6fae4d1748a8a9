"""Reports built from the platform database: the progress table of the notice."""
