"""Rich Text Format: its lexer, tables, and the HTML carried inside it."""
