"""Microsoft Office: the Office Open XML package (Word, Excel, PowerPoint), its
encryption, and the legacy binary files read through LibreOffice."""
