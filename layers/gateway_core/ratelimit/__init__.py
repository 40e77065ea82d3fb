"""Rate limiting on DynamoDB: GCRA token buckets spent with one conditional write per scope."""
