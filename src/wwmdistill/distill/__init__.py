"""Knowledge distillation: losses, layer mappings, student initialisation and training loops."""
