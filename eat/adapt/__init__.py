"""Emotional adaptation (Sec. 3.2): emotion mapper, deep prompts, EDN and EAM on the frozen pretrained model."""
