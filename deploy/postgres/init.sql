-- One database per service (ARCHITECTURE.md: no service reads another's database).
CREATE DATABASE catalog;
CREATE DATABASE registration;
CREATE DATABASE zoom_bridge;
CREATE DATABASE integrations;
