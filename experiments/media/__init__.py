"""Media: record and render a run's episodes; rollout videos, violation clips, contact sheets, the live viewer."""
