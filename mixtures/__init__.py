"""Token-budgeted mixtures: token counting, allocation, shards and manifests (`curate mix`, coming next)."""
