"""The webhook endpoints admins register (``/v1/webhooks/endpoints``)."""
