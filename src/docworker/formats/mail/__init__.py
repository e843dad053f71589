"""E-mail: RFC 822 messages and Outlook .msg files, with their bodies and attachments."""
