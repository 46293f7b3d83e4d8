"""The benchmark report: rendering, the feature matrix and the "which tool when" rules."""
