"""The latent toolkit: inversion, directions, edits, CLIP text edits, latent files, perceptual losses."""
