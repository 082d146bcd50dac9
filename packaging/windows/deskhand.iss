; Inno Setup script: the Windows installer of the PyInstaller folder (DirectML runtime inside).
; scripts/build-package.sh windows runs it through build-installer.sh with
;   iscc /DAppVersion=<version> /DSourceDir=<bundle folder> /DOutputDir=<dist> deskhand.iss
; Per-user install (no admin rights); uninstalling keeps %LOCALAPPDATA%\deskhand (models, runs).
#ifndef AppVersion
  #error AppVersion is required (/DAppVersion=...)
#endif
#ifndef SourceDir
  #error SourceDir is required (/DSourceDir=...)
#endif
#ifndef OutputDir
  #define OutputDir "..\..\dist"
#endif

[Setup]
AppId={{6F1C2E0A-5D7B-4C1E-9A55-2B7D0E3C8F41}
AppName=Deskhand
AppVersion={#AppVersion}
AppPublisher=Deskhand developers
DefaultDirName={localappdata}\Programs\Deskhand
DefaultGroupName=Deskhand
PrivilegesRequired=lowest
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#OutputDir}
OutputBaseFilename=Deskhand-{#AppVersion}-setup
SetupIconFile=..\..\build\package\deskhand-windows\icons\deskhand.ico
UninstallDisplayIcon={app}\deskhandw.exe
Compression=lzma2
SolidCompression=yes
ChangesEnvironment=yes

[Tasks]
Name: "desktopicon"; Description: "Create a desktop shortcut"; Flags: unchecked
Name: "autostart"; Description: "Start Deskhand in the tray when I sign in"; Flags: unchecked
Name: "path"; Description: "Add the deskhand command to PATH"

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\Deskhand"; Filename: "{app}\deskhandw.exe"
Name: "{userdesktop}\Deskhand"; Filename: "{app}\deskhandw.exe"; Tasks: desktopicon
Name: "{userstartup}\Deskhand"; Filename: "{app}\deskhandw.exe"; Parameters: "app --tray"; Tasks: autostart

[Registry]
Root: HKCU; Subkey: "Environment"; ValueType: expandsz; ValueName: "Path"; ValueData: "{olddata};{app}"; Tasks: path; Check: NeedsAddPath(ExpandConstant('{app}'))

[Run]
Filename: "{app}\deskhandw.exe"; Description: "Start Deskhand"; Flags: nowait postinstall skipifsilent

[Code]
function NeedsAddPath(Dir: string): Boolean;
var
  Paths: string;
begin
  if not RegQueryStringValue(HKCU, 'Environment', 'Path', Paths) then
    Paths := '';
  Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Paths) + ';') = 0;
end;
