"""Channels: the senders a tenant reaches its debtors through (WhatsApp, SMS, e-mail)."""
