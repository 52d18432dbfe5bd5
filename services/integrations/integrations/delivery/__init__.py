"""Outbound deliveries: what a message becomes (``events``), how it is signed (``signing``),
where it may go (``targets``), when it is tried again (``schedule``), the durable queue
(``queue``), the HTTP call (``sender``) and the worker that runs them (``worker``)."""
