"""The transformations, one family per module; each is a pure function of a program that
raises ValueError with the reason when the step is illegal."""
