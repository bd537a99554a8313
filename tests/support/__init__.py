"""Test doubles and sample values shared by more than one test tier."""
