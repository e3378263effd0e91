"""Test and demo tools: the local SendGrid server and the demo data generator."""
