"""The journey builder's model, without the web: a *draft* of a definition as the form shows it.

`draft` (the draft's shape: blanks, ways out), `convert` (definition <-> draft), `posted` (the posted
form -> draft), `edits` (structural edits), `layout` (the vertical flow the page draws).
"""
