"""The training loop and what it needs: runtime setup, loss, metrics, checkpoints, early stopping."""
