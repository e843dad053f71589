"""Text and markup: plain text, delimited tables, JSON, XML, Markdown and subtitles."""
