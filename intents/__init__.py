"""Intent side of kefu: normalisation, tokenisation, slots and the classifier."""
