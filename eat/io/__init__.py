"""Reading and writing media and tables, atomically."""
