"""Audio-visual sync networks: the Wav2Lip-style expert behind L_sync and SyncNet v2 for the Sync metric.

``wav2lip_expert``: the trainable expert (Sec. 3.3). ``syncnet_v2``: syncnet_python's pretrained
network (the paper's Sync confidence). ``embedders``: either network as the embedder of metrics/sync.py
(syncnet_python's offset search and confidence).
"""
