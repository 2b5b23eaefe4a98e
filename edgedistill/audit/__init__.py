"""Checks of a shipped bundle against what its run recorded: the artifacts re-run on the
recorded validation sample (`bundle verify --run`), and the drift audit on new data
(`edgedistill audit`)."""
