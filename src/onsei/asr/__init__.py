"""Speech recognizers trained here: recipes, model families, trainer, and their Recognizer."""
