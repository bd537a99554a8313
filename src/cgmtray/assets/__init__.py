"""Icons and sounds shipped in the wheel, loaded with importlib.resources."""
