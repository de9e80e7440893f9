"""Reading a submitted notebook: loading, cell helpers, unfinished-cell detection."""
