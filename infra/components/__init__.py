"""One ComponentResource per deployed system."""
