"""The record-event contract shared by producers, the projector and the API."""
