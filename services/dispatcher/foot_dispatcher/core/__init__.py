"""The dispatcher's pure core: rendering, overriders, dependencies, removal, aggregation."""
