"""Email for the service desk: mail in (SMTP listener, IMAP polling) and agents' replies out (docs/service.md)."""
