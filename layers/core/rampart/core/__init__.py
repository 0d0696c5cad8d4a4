"""The ground floor: money, errors, settings, observability. Imports nothing of Rampart."""
