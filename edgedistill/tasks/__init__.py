"""Tasks: recipes, data sources and splits, preprocessing, evaluation on a split."""
