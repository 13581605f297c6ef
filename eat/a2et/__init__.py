"""A2ET pretraining (Sec. 3.1.2): windows of audio, speech and pose → PCA coefficients of the expression E."""
