"""Input back ends for `agent.executor`: pyautogui bound to a display, XTest and clipboard typers.

`backend` opens the pyautogui-like module for one display and holds the input lock; `typers`
types Unicode text (keysyms through XTest on X11, the clipboard elsewhere). Nothing here knows
about actions: the executor's dispatch turns an Action into calls on this seam.
"""
