"""The vision domain: faces in the 1 fps frames, their embeddings, speaker galleries, the
speaking face of each utterance, and zero-shot frame emotions."""

import dagster as dg

from assets.vision.detections import face_detections
from assets.vision.embeddings import face_embeddings
from assets.vision.frame_emotions import frame_emotions
from assets.vision.gallery import speaker_gallery
from assets.vision.speaking import speaking_faces

defs = dg.Definitions(assets=[face_detections, face_embeddings, speaker_gallery, speaking_faces, frame_emotions])
