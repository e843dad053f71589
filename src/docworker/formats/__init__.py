"""Format detection and one parser per format family."""
