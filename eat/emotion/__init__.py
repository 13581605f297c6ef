"""Emotion classifier for Acc_emo: Emotion-FAN (ResNet-18 frame features + frame attention), in emotion_fan.py."""
