"""How the project words things for people: dates, amounts, places and the reasons a notice
matched. Shared by the matcher, the notifier and the web console (not a stage: it reads no
store and imports no stage)."""
