"""The operators' what-if (docs/what-if.md): proposed changes, both futures of the live
state on the pure rules, and applying a change through the admin's services."""
