"""Audio features of the paper's inputs (docs/paper_notes.md §1): acoustic (log-mel, MFCC) and speech features.

``spectral`` (frame-aligned mel/MFCC) → ``speech`` (backend interface, per-frame windows of 50 fps
logits) with two backends, ``deepspeech`` (the paper's DeepSpeech 0.1.0, optional) and
``recognizer`` (the offline CTC substitute, trained by ``train_recognizer``) → ``extract`` (the
``audio_features`` stage). ``alphabet``: DeepSpeech's 29 symbols, CTC decoding, CER.
"""
