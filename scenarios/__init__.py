"""Gherkin scenarios, one folder per couloir; each folder's test module binds its features."""
