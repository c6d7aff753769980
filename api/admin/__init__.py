"""Administration through the API: the audit log, customer exports, keys' customer lists."""
