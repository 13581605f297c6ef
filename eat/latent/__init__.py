"""Training losses of the enhanced 3D latent model (Sec. 3.1.1; OSFV / face-vid2vid losses)."""
