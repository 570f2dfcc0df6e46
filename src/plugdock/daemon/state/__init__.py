"""What the daemon keeps: database, models and migrations, key-value store, credentials, blobs."""
