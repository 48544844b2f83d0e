"""What a finished (or running) curate job can tell about itself without being run again: samples of what
each rule removed (`samples`), where every document went (`lineage`, `curate trace`), two runs compared
(`diff`), threshold sweeps over the scores every row keeps (`sweep`), and cost projections from a
sample (`plan`)."""
