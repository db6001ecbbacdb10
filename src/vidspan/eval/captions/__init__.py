"""Dense-caption evaluation: DREAM-1K and CaReBench, AutoDQ, pairwise comparison, reference audits."""
