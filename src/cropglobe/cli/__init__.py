"""The ``cropglobe`` command line: thin click commands that parse, validate and call the library."""
