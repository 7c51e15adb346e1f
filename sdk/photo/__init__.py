"""Photo editing: FFHQ alignment, paste-back and pivotal tuning."""
