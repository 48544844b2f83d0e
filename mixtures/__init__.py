"""Token-budgeted mixtures (`curate mix`) and mixture ablations (`curate ablate`): Qwen token counts, allocation, selection, shuffled shards, token files and manifests."""
